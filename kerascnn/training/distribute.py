"""Distribution strategies: where the replicas of a run live.

``--strategy``:

- ``auto``: ``mirrored`` when more than one GPU is visible, else TensorFlow's default
  strategy (one device);
- ``one-device``: ``tf.distribute.OneDeviceStrategy`` on the first GPU, else the CPU;
- ``mirrored``: ``tf.distribute.MirroredStrategy`` over every visible GPU, or over every
  logical CPU device when there is no GPU (``tf.config.set_logical_device_configuration``);
- ``tpu``: ``tf.distribute.TPUStrategy`` through ``TPUClusterResolver`` (the TPU VM's, or
  the one named by ``TPU_NAME``);
- ``multi-worker``: several processes (hosts), with Keras 3's own data parallelism on the JAX
  backend: ``jax.distributed`` joins the processes (gloo collectives on CPUs, NCCL on GPUs)
  and ``keras.distribution.DataParallel`` replicates the model on every device of every
  process, splitting each global batch. Under Keras 3, ``MultiWorkerMirroredStrategy`` with
  ``model.fit`` fails in the TensorFlow trainer (keras-team/keras#20585), so it is not used.

The model is built and compiled inside ``Distribution.scope()``; ``--batch-size`` is the
global batch, split across the replicas.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from kerascnn.errors import InvalidArgumentError, first_line
from kerascnn.settings import Setting, check, check_value, setting

STRATEGIES = ("auto", "one-device", "mirrored", "multi-worker", "tpu")


@dataclass
class DistributionConfig:
    """Where the replicas of a run live (module docstring)."""

    strategy: str = setting(
        "auto",
        "Distribution strategy (multi-worker: KERAS_BACKEND=jax).",
        choices=STRATEGIES,
    )

    def __post_init__(self) -> None:
        check(self)


def check_strategy(name: str) -> None:
    check_value("strategy", name, Setting("", choices=STRATEGIES))


@dataclass(frozen=True)
class Cluster:
    """One worker's view of a multi-worker run.

    Args:
        coordinator: ``HOST:PORT`` of worker 0's coordination service (every worker gives
            the same one; worker 0 listens on it).
        num_workers: the number of worker processes.
        worker_index: this process's index, 0 to ``num_workers - 1``; worker 0 is the chief.
    """

    coordinator: str
    num_workers: int
    worker_index: int

    def __post_init__(self):
        host, sep, port = self.coordinator.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidArgumentError(
                f"coordinator must be HOST:PORT; received {self.coordinator!r}"
            )
        if self.num_workers < 1:
            raise InvalidArgumentError(
                f"num_workers must be at least 1; received {self.num_workers}"
            )
        if not 0 <= self.worker_index < self.num_workers:
            raise InvalidArgumentError(
                f"worker_index must be 0 to {self.num_workers - 1}; received {self.worker_index}"
            )

    @classmethod
    def from_tf_config(cls, text: str) -> Cluster:
        """``TF_CONFIG`` as TensorFlow's multi-worker strategies read it: the coordinator is
        the first worker's address, the index is the task's."""
        try:
            data = json.loads(text)
            workers = list(data["cluster"]["worker"])
            task = data.get("task", {})
            index = int(task.get("index", 0))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InvalidArgumentError(
                'TF_CONFIG must be JSON like {"cluster": {"worker": ["host0:port", ...]}, '
                '"task": {"type": "worker", "index": 0}}'
            ) from None
        if task.get("type", "worker") not in ("worker", "chief") or not workers:
            raise InvalidArgumentError(
                "TF_CONFIG: only a 'worker' cluster with 'worker' tasks is supported"
            )
        return cls(coordinator=str(workers[0]), num_workers=len(workers), worker_index=index)


def resolve_cluster(
    coordinator: str | None = None,
    num_workers: int | None = None,
    worker_index: int | None = None,
    environ: dict[str, str] | None = None,
) -> Cluster | None:
    """The cluster from the flags (all three, or none), else from ``TF_CONFIG``, else None."""
    given = [v is not None for v in (coordinator, num_workers, worker_index)]
    if any(given):
        if not all(given):
            raise InvalidArgumentError(
                "a multi-worker run needs all of --coordinator, --num-workers and --worker-index"
            )
        return Cluster(coordinator, num_workers, worker_index)
    environ = os.environ if environ is None else environ
    if environ.get("TF_CONFIG"):
        return Cluster.from_tf_config(environ["TF_CONFIG"])
    return None


@dataclass
class Distribution:
    """The resolved strategy of a run.

    Attributes:
        name: ``default``, ``one-device``, ``mirrored``, ``tpu`` or ``multi-worker``.
        replicas: model replicas in sync (devices across all workers).
        strategy: the ``tf.distribute.Strategy``, or None (default, multi-worker).
        cluster: the workers of a multi-worker run.
    """

    name: str = "default"
    replicas: int = 1
    strategy: Any = None
    cluster: Cluster | None = None
    devices: list[str] = field(default_factory=list)

    @property
    def worker_index(self) -> int:
        return self.cluster.worker_index if self.cluster else 0

    @property
    def is_chief(self) -> bool:
        """Worker 0 (or the only process) writes the run directory and the export."""
        return self.worker_index == 0

    @property
    def multi_worker(self) -> bool:
        return self.name == "multi-worker"

    def activate(self) -> None:
        """Under multi-worker, (re)set Keras's global distribution, which
        ``keras.backend.clear_session`` forgets; nothing otherwise."""
        if self.multi_worker:
            import jax  # the optional [jax] extra

            distribution = keras.distribution.DataParallel(devices=jax.devices())
            keras.distribution.set_distribution(distribution)

    def scope(self):
        """Build and compile the model inside this."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def describe(self) -> dict[str, Any]:
        """For metadata.json."""
        described = {"strategy": self.name, "replicas": self.replicas, "devices": self.devices}
        if self.cluster:
            described.update(
                num_workers=self.cluster.num_workers,
                worker_index=self.cluster.worker_index,
                coordinator=self.cluster.coordinator,
            )
        return described


def setup(name: str, cluster: Cluster | None = None) -> Distribution:
    """Create the strategy ``name`` (see the module docstring). Call it before any model is
    built; for ``multi-worker``, before any JAX computation of the process (it joins the
    workers; ``Distribution.activate`` then turns Keras's data parallelism on).

    Raises:
        InvalidArgumentError: an unknown name, a strategy the Keras backend cannot run, no
            TPU for ``tpu``, or no cluster for ``multi-worker``.
    """
    check_strategy(name)
    backend = keras.backend.backend()
    if name == "multi-worker":
        return _multi_worker(cluster, backend)
    if backend != "tensorflow":
        if name == "auto":
            return Distribution()
        raise InvalidArgumentError(
            f"--strategy {name} needs the TensorFlow backend; KERAS_BACKEND is {backend}"
        )
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if name == "auto":
        if len(gpus) > 1:
            name = "mirrored"
        else:
            return Distribution(devices=gpus[:1] or ["/cpu:0"])
    if name == "one-device":
        device = gpus[0] if gpus else "/cpu:0"
        return Distribution(
            "one-device", 1, tf.distribute.OneDeviceStrategy(device), devices=[device]
        )
    if name == "mirrored":
        devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
        return Distribution("mirrored", strategy.num_replicas_in_sync, strategy, devices=devices)
    return _tpu()


def _tpu() -> Distribution:
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise InvalidArgumentError(
            f"--strategy tpu: no TPU found ({type(error).__name__}: {first_line(error)})"
        ) from None
    devices = [d.name for d in tf.config.list_logical_devices("TPU")]
    return Distribution("tpu", strategy.num_replicas_in_sync, strategy, devices=devices)


_JAX_DISTRIBUTED: Cluster | None = None


def _multi_worker(cluster: Cluster | None, backend: str) -> Distribution:
    global _JAX_DISTRIBUTED
    if backend != "jax":
        raise InvalidArgumentError(
            "--strategy multi-worker runs on Keras's JAX backend: start every worker with "
            "KERAS_BACKEND=jax (e.g. KERAS_BACKEND=jax kerascnn-train --strategy multi-worker "
            f"...); KERAS_BACKEND is {backend}"
        )
    cluster = cluster or resolve_cluster()
    if cluster is None:
        raise InvalidArgumentError(
            "--strategy multi-worker needs --coordinator HOST:PORT, --num-workers N and "
            "--worker-index I (or TF_CONFIG)"
        )
    import jax  # the optional [jax] extra

    if _JAX_DISTRIBUTED is None:
        # CPU workers exchange gradients through gloo; GPUs use NCCL whatever this says.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=cluster.coordinator,
            num_processes=cluster.num_workers,
            process_id=cluster.worker_index,
        )
        _JAX_DISTRIBUTED = cluster
    elif _JAX_DISTRIBUTED != cluster:
        raise InvalidArgumentError(
            f"this process already joined {_JAX_DISTRIBUTED}; cannot join {cluster}"
        )
    devices = jax.devices()
    return Distribution(
        "multi-worker", len(devices), cluster=cluster, devices=[str(d) for d in devices]
    )


def shard_evenly(dataset, batch_size: int, examples: int, distribution: Distribution):
    """A batched pipeline of ``examples`` with every batch full under multi-worker (Keras
    splits each global batch across the workers, and every worker must run the same number
    of steps): the last partial batch is dropped. Unchanged otherwise."""
    if not distribution.multi_worker:
        return dataset
    full = dataset.rebatch(batch_size, drop_remainder=True)
    return full.apply(tf.data.experimental.assert_cardinality(examples // batch_size))


def check_batch_size(batch_size: int, distribution: Distribution) -> None:
    if distribution.multi_worker and batch_size % distribution.cluster.num_workers:
        raise InvalidArgumentError(
            f"--batch-size {batch_size} must be a multiple of --num-workers "
            f"{distribution.cluster.num_workers} (it is the global batch)"
        )


def end_of_training(distribution: Distribution) -> None:
    """After ``fit``: under multi-worker, turn Keras's distribution off, so each worker
    evaluates and saves on its own devices (on whole splits, with no cross-worker steps to
    keep in step)."""
    if distribution.multi_worker:
        keras.distribution.set_distribution(None)


def worker_scratch_dir(run_name: str, distribution: Distribution):
    """Where a worker other than 0 writes its copy of the run (a new temporary directory,
    kept, so its logs and weights can be looked at)."""
    return Path(tempfile.mkdtemp(prefix=f"kerascnn-{run_name}-worker{distribution.worker_index}-"))
