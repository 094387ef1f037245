"""PyTorch trainer of the delay model: a small MLP trained on several processes by one of two backends.

``DISTRIBUTORS``: Spark's ``TorchDistributor`` (``"torch"``, DDP; the default) or Horovod on Spark
(``"horovod"``, ``horovod.spark.run``; optional, built by ``make horovod``, see docs/HOROVOD.md). The
training and validation rows are collected to the driver (a window of flights is a few hundred
thousand rows of 22 doubles at most) and handed to every training process, which reads its share of
each epoch through a ``DistributedSampler``. The model, its standardisation, the training loop and the
early stopping are the same code under both (``_fit``); only starting the processes, keeping their
replicas equal and summing their losses differ (``_torch_worker``, ``_horovod_worker``). Rank 0's
result comes back: the weights of the epoch with the lowest validation log loss, and the per-epoch
losses.

How the training job's options map onto ``TorchDistributor``:

- ``--num-workers N`` is ``num_processes=N``, ``--device cuda`` is ``use_gpu=True``.
- Local master (``local[*]``, the embedded default): ``local_mode=True``, so ``torchrun`` starts the N
  processes on the driver; on CPU they talk over gloo. With ``use_gpu`` the driver must own N GPUs
  (``spark.driver.resource.gpu.amount`` and ``spark.driver.resource.gpu.discoveryScript``), process
  ``i`` gets ``cuda:LOCAL_RANK`` and they talk over NCCL.
- Cluster master (the Spark Operator): ``local_mode=False``, so training runs in N barrier tasks (the
  executors need N free task slots at once), each starting one process per GPU it owns. With
  ``use_gpu`` set ``spark.executor.resource.gpu.amount`` and ``spark.task.resource.gpu.amount`` (1:
  one GPU per task and process); ``num_processes`` must be a multiple of the latter.

Under Horovod every process runs in a Spark task (local master or cluster alike), so ``num_processes``
tasks must find free slots at once; they talk over Gloo. With ``use_gpu`` process ``i`` takes
``cuda:hvd.local_rank()``, which needs a Horovod built with CUDA (``make horovod`` builds a CPU one).
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from flight_delays.contract import FEATURE_COLUMNS, LABEL_COLUMN

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from types import ModuleType

    import pandas as pd
    import torch
    from mlflow.models import ModelInfo, ModelSignature
    from pyspark.sql import DataFrame, SparkSession

    #: A backend's versions of the module to train and of its optimiser (see _fit).
    _Distribute = Callable[[torch.nn.Module, torch.optim.Optimizer],
                           tuple[torch.nn.Module, torch.optim.Optimizer]]

log = logging.getLogger(__name__)

#: What can run the training processes (``train_torch(distributor=...)``): Spark's TorchDistributor,
#: or Horovod on Spark.
DISTRIBUTORS = ("torch", "horovod")


class TrainingHistory(TypedDict):
    """Per-epoch mean log losses (index 0 is epoch 1) and the epoch whose weights were kept."""

    train_log_loss: list[float]
    valid_log_loss: list[float]
    best_epoch: int


@dataclass(frozen=True, eq=False)
class _WorkerConfig:
    """What every training process needs besides the data; plain values, so it pickles anywhere."""

    mean: np.ndarray
    scale: np.ndarray
    hidden_units: tuple[int, ...]
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    patience: int
    seed: int
    use_gpu: bool


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation (population) of the finite values of ``features``.

    A column with no finite value gets mean 0, and a constant or empty one scale 1, so that
    standardising never divides by zero.

    :param features: one row per example, one column per feature; NaN where a value is missing.
    """
    values = np.asarray(features, dtype=np.float64)
    finite = np.isfinite(values)
    counts = finite.sum(axis=0)
    filled = np.where(finite, values, 0.0)
    mean = np.divide(filled.sum(axis=0), counts, out=np.zeros(values.shape[1]), where=counts > 0)
    squares = np.where(finite, (values - mean) ** 2, 0.0).sum(axis=0)
    std = np.sqrt(np.divide(squares, counts, out=np.zeros(values.shape[1]), where=counts > 0))
    return mean, np.where(std > 0, std, 1.0)


#: The model's classes once defined (a dict, not functools.cache, whose wrapper cloudpickle can only
#: pickle by reference: see _pickled_by_value).
_MODEL_CLASSES: dict[str, type] = {}


def _model_classes() -> tuple[type, type]:
    """The model's ``nn.Module`` classes, defined on first use so that importing this module needs no torch.

    Being local classes, cloudpickle saves them by value in the MLflow model: loading it needs torch
    and cloudpickle, not this project.
    """
    if _MODEL_CLASSES:
        return _MODEL_CLASSES["DelayNet"], _MODEL_CLASSES["Logits"]
    import torch
    from torch import nn

    class DelayNet(nn.Module):
        """Raw features (``FEATURE_COLUMNS`` order, NaN or ±inf = missing) → probability of delay.

        The standardisation is part of the module (buffers ``mean`` and ``scale``): a missing value
        becomes 0 (the training mean) and sets its missing-indicator input to 1.
        """

        def __init__(self, mean: np.ndarray, scale: np.ndarray, hidden_units: Sequence[int]) -> None:
            super().__init__()
            self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
            self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
            layers: list[nn.Module] = []
            width = 2 * len(mean)
            for units in hidden_units:
                layers += [nn.Linear(width, units), nn.ReLU()]
                width = units
            layers.append(nn.Linear(width, 1))
            self.mlp = nn.Sequential(*layers)

        def inputs(self, x: torch.Tensor) -> torch.Tensor:
            """Standardised values (0 where missing) followed by the missing indicators."""
            x = x.to(self.mean.dtype)
            missing = ~torch.isfinite(x)
            standardised = torch.where(missing, torch.zeros_like(x), (x - self.mean) / self.scale)
            return torch.cat([standardised, missing.to(x.dtype)], dim=1)

        def logits(self, x: torch.Tensor) -> torch.Tensor:
            return self.mlp(self.inputs(x)).squeeze(-1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.logits(x))

    class Logits(nn.Module):
        """``DelayNet.logits`` as a forward pass: what DDP trains (its gradient hooks see only forward)."""

        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net.logits(x)

    _MODEL_CLASSES.update(DelayNet=DelayNet, Logits=Logits)
    return DelayNet, Logits


def delay_net(mean: np.ndarray, scale: np.ndarray, hidden_units: Sequence[int]) -> torch.nn.Module:
    """A new, untrained model that standardises with ``mean`` and ``scale``.

    :param mean: per-feature training means, in ``FEATURE_COLUMNS`` order.
    :param scale: per-feature training standard deviations (never 0).
    :param hidden_units: widths of the hidden ReLU layers.
    """
    delay_net_class, _ = _model_classes()
    return delay_net_class(mean, scale, tuple(hidden_units))


def worker_device(*, use_gpu: bool, local_rank: int | None = None) -> torch.device:
    """The device of this training process: its local rank's GPU when asked for and present, else the CPU.

    :param use_gpu: whether the process should train on a GPU.
    :param local_rank: the process's rank among those on its machine; by default ``LOCAL_RANK``, which
        ``torchrun`` sets (Horovod's workers pass ``hvd.local_rank()``).
    """
    import torch

    if use_gpu and torch.cuda.is_available():
        if local_rank is None:
            local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _log_loss_sums(logits_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                   chunk: int = 65536) -> torch.Tensor:
    """[summed log loss, rows] of ``x``, ``y`` in float64, scored by chunks."""
    import torch
    from torch.nn.functional import binary_cross_entropy_with_logits

    total = torch.zeros(2, dtype=torch.float64, device=x.device)
    with torch.no_grad():
        for start in range(0, len(x), chunk):
            logits = logits_fn(x[start:start + chunk])
            total[0] += binary_cross_entropy_with_logits(logits, y[start:start + chunk], reduction="sum")
            total[1] += len(logits)
    return total


def _fit(data: dict[str, np.ndarray], config: _WorkerConfig, *, rank: int, world_size: int,
         device: torch.device, distribute: _Distribute,
         sum_over_ranks: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, Any]:
    """One training process, whichever backend runs it: returns its best weights and the history.

    Each process trains on its ``rank``-th share of every epoch and scores its share of the validation
    set; the backend keeps the replicas equal (``distribute``) and adds up the losses (``sum_over_ranks``),
    so that every process takes the same early-stopping decision.

    :param data: the training and validation arrays (``x_train``, ``y_train``, ``x_valid``, ``y_valid``).
    :param config: the model and training settings.
    :param rank: this process's rank, from 0 to ``world_size - 1``.
    :param world_size: the number of training processes.
    :param device: where this process trains.
    :param distribute: the backend's versions of the module to train and of its optimiser, which start
        every process from rank 0's weights and average the gradients of all processes at each step.
    :param sum_over_ranks: the element-wise sum of a tensor over all processes (every process calls it).
    """
    import torch
    from torch.nn.functional import binary_cross_entropy_with_logits
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    torch.manual_seed(config.seed)
    net = delay_net(config.mean, config.scale, config.hidden_units).to(device)
    _, logits_class = _model_classes()
    module = logits_class(net)
    model, optimizer = distribute(module, torch.optim.Adam(module.parameters(), lr=config.learning_rate,
                                                           weight_decay=config.weight_decay))
    train = TensorDataset(torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"]))
    # The sampler pads every rank to the same number of rows, so all ranks run the same number of
    # steps (each step's gradient all-reduce needs every rank).
    sampler = DistributedSampler(train, num_replicas=world_size, rank=rank, shuffle=True, seed=config.seed)
    loader = DataLoader(train, batch_size=max(1, config.batch_size // world_size), sampler=sampler)
    x_valid = torch.from_numpy(data["x_valid"][rank::world_size]).to(device)
    y_valid = torch.from_numpy(data["y_valid"][rank::world_size]).to(device)

    train_losses: list[float] = []
    valid_losses: list[float] = []
    best_epoch, best_state = 0, None
    for epoch in range(1, config.epochs + 1):
        sampler.set_epoch(epoch)
        model.train()
        train_sums = torch.zeros(2, dtype=torch.float64, device=device)
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            # No set_to_none=True, torch's default: Horovod's optimiser's zero_grad() takes no argument.
            optimizer.zero_grad()
            loss = binary_cross_entropy_with_logits(model(x), y)
            loss.backward()
            optimizer.step()
            train_sums[0] += loss.detach().double() * len(y)
            train_sums[1] += len(y)
        model.eval()
        valid_sums = _log_loss_sums(net.logits, x_valid, y_valid)
        # Sums of losses and of rows, not means: the exact mean over all rows whatever the shares' sizes.
        sums = sum_over_ranks(torch.stack([train_sums, valid_sums]))
        train_losses.append(float(sums[0, 0] / sums[0, 1]))
        valid_losses.append(float(sums[1, 0] / sums[1, 1]))
        if best_state is None or valid_losses[-1] < valid_losses[best_epoch - 1]:
            best_epoch = epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
        elif epoch - best_epoch >= config.patience:
            break
    history = {"train_log_loss": train_losses, "valid_log_loss": valid_losses, "best_epoch": best_epoch}
    return {"state_dict": best_state, "history": history}


def _torch_worker(data: dict[str, np.ndarray], config: _WorkerConfig) -> dict[str, Any]:
    """One DDP training process (run by ``torchrun``): returns rank 0's best weights and the history."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    device = worker_device(use_gpu=config.use_gpu)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        def distribute(module: torch.nn.Module,
                       optimizer: torch.optim.Optimizer) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
            # DDP copies rank 0's weights to the other ranks and averages the gradients in backward().
            device_ids = [device.index] if device.type == "cuda" else None
            return DistributedDataParallel(module, device_ids=device_ids), optimizer

        def sum_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
            dist.all_reduce(tensor)
            return tensor

        result = [_fit(data, config, rank=dist.get_rank(), world_size=dist.get_world_size(), device=device,
                       distribute=distribute, sum_over_ranks=sum_over_ranks)]
        # TorchDistributor's launcher has every process write its return value to the same file, so
        # they all return rank 0's result (DDP keeps the replicas equal anyway): the file always holds it.
        dist.broadcast_object_list(result, src=0)
        return result[0]
    finally:
        dist.destroy_process_group()


def _horovod_worker(data: dict[str, np.ndarray], config: _WorkerConfig) -> dict[str, Any]:
    """One Horovod training process (a Spark task of ``horovod.spark.run``): its best weights and history."""
    import horovod.torch as hvd
    import torch

    hvd.init()
    try:
        device = worker_device(use_gpu=config.use_gpu, local_rank=hvd.local_rank())
        if device.type == "cuda":
            if not hvd.cuda_built():
                raise RuntimeError(f"Horovod rank {hvd.rank()} was to train on {device}, but this Horovod "
                                   "was built without CUDA: build it with HOROVOD_GPU_OPERATIONS=NCCL "
                                   "(docs/HOROVOD.md) or train on the CPU")
            torch.cuda.set_device(device)

        def distribute(module: torch.nn.Module,
                       optimizer: torch.optim.Optimizer) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
            optimizer = hvd.DistributedOptimizer(optimizer, named_parameters=module.named_parameters())
            hvd.broadcast_parameters(module.state_dict(), root_rank=0)
            # No hvd.broadcast_optimizer_state: a new optimiser is the same on every rank, and Horovod
            # fills a new one's state by taking a step with zero gradients, which would count as Adam's
            # first step and, with weight decay, move the weights before training.
            return module, optimizer

        return _fit(data, config, rank=hvd.rank(), world_size=hvd.size(), device=device,
                    distribute=distribute, sum_over_ranks=lambda tensor: hvd.allreduce(tensor, op=hvd.Sum))
    finally:
        hvd.shutdown()


def to_numpy(frame: DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Collect (features as float32 with NaN for missing, label as float32) of ``frame`` to the driver."""
    from pyspark.sql import functions as F

    rows = frame.select(*(F.col(c).cast("double") for c in FEATURE_COLUMNS),
                        F.col(LABEL_COLUMN).cast("double")).toPandas()
    values = rows.to_numpy(dtype=np.float64, na_value=np.nan)
    features, label = values[:, :-1], values[:, -1]
    if np.isnan(label).any():
        missing = int(np.isnan(label).sum())
        raise ValueError(f"{missing} row(s) have no {LABEL_COLUMN}; drop them before training")
    return features.astype(np.float32), label.astype(np.float32)


def is_local_master(spark: SparkSession) -> bool:
    """Whether Spark runs in-process (``local``/``local[...]``), as ``TorchDistributor`` itself decides it."""
    master = spark.conf.get("spark.master", "")
    return master == "local" or master.startswith("local[")


@contextmanager
def _pickled_by_value() -> Iterator[None]:
    """Ship this module's code with the training function instead of a reference to it.

    ``TorchDistributor`` (with pyspark's copy of cloudpickle) and ``horovod.spark`` (with cloudpickle
    itself) pickle the function for processes whose ``PYTHONPATH`` need not hold this project:
    ``torchrun``'s, and on a cluster the executors' (Horovod's always run in Spark tasks).
    """
    import cloudpickle
    from pyspark import cloudpickle as pyspark_cloudpickle

    module = sys.modules[__name__]
    picklers = (pyspark_cloudpickle, cloudpickle)
    for pickler in picklers:
        pickler.register_pickle_by_value(module)
    try:
        yield
    finally:
        for pickler in picklers:
            pickler.unregister_pickle_by_value(module)


def _horovod_spark() -> ModuleType:
    """``horovod.spark``, once Horovod's PyTorch extension is known to load (on the driver)."""
    try:
        import horovod.spark
        import horovod.torch  # the workers' import: fail here rather than in every Spark task
    except ImportError as error:
        raise ImportError(
            "distributor='horovod' needs Horovod with its PyTorch extension, which does not import "
            f"({error}): run `make horovod` to build it into the project's virtual environment "
            "(docs/HOROVOD.md)"
        ) from error
    return horovod.spark


def train_torch(train: DataFrame, valid: DataFrame, *, num_processes: int = 2, use_gpu: bool = False,
                epochs: int = 30, batch_size: int = 512, learning_rate: float = 1e-3,
                hidden_units: Sequence[int] = (64, 32), weight_decay: float = 0.0, patience: int = 5,
                seed: int = 42, distributor: str = "torch") -> tuple[torch.nn.Module, TrainingHistory]:
    """Train the delay model on several processes; return it (on the CPU, in eval mode) and its history.

    Training stops after ``patience`` epochs without a lower validation log loss; the returned weights
    are those of the best epoch. Both distributors run the same training: only how the processes are
    started and how they exchange gradients and losses differ.

    :param train: training rows: ``FEATURE_COLUMNS`` (doubles, NaN or null = missing) and ``is_delayed``.
    :param valid: validation rows, same columns; they choose the epoch.
    :param num_processes: training processes (``--num-workers``). With ``TorchDistributor``: local
        processes under a local master, barrier tasks on a cluster. With Horovod: Spark tasks, which must
        all find a free task slot at once (``local[N]`` has N).
    :param use_gpu: one GPU per process with NCCL (``--device cuda``); CPU and gloo otherwise.
    :param epochs: the most epochs to run.
    :param batch_size: rows per optimiser step over all processes (each takes its share), so that the
        same settings train alike on any number of processes.
    :param learning_rate: Adam's learning rate.
    :param hidden_units: widths of the hidden layers.
    :param weight_decay: Adam's L2 penalty.
    :param patience: epochs without improvement before stopping.
    :param seed: seeds the weights and the shuffling.
    :param distributor: what runs the processes, one of ``DISTRIBUTORS``: ``"torch"``, Spark's
        ``TorchDistributor`` (DDP); ``"horovod"``, ``horovod.spark.run`` (Horovod over Gloo, built by
        ``make horovod``).
    """
    if distributor not in DISTRIBUTORS:
        raise ValueError(f"unknown distributor {distributor!r}: expected one of {', '.join(DISTRIBUTORS)}")
    if distributor == "horovod":
        horovod_spark = _horovod_spark()  # before collecting the data
    x_train, y_train = to_numpy(train)
    x_valid, y_valid = to_numpy(valid)
    if not len(x_train) or not len(x_valid):
        raise ValueError(f"cannot train on {len(x_train)} training and {len(x_valid)} validation rows: "
                         "both sets need rows")
    mean, scale = feature_statistics(x_train)
    config = _WorkerConfig(mean=mean, scale=scale, hidden_units=tuple(hidden_units), epochs=epochs,
                           batch_size=batch_size, learning_rate=learning_rate, weight_decay=weight_decay,
                           patience=patience, seed=seed, use_gpu=use_gpu)
    data = {"x_train": x_train, "y_train": y_train, "x_valid": x_valid, "y_valid": y_valid}
    log.info("Training on %d rows (%d validation) with %d %s process(es) under %s", len(x_train),
             len(x_valid), num_processes, "GPU" if use_gpu else "CPU", distributor)
    with _pickled_by_value():
        if distributor == "horovod":
            # One result per rank, in rank order; the ranks' weights are equal (the gradients are averaged).
            result = horovod_spark.run(_horovod_worker, args=(data, config), num_proc=num_processes,
                                       use_gloo=True, verbose=0)[0]
        else:
            from pyspark.ml.torch.distributor import TorchDistributor

            local_mode = is_local_master(train.sparkSession)
            log.info("TorchDistributor local_mode=%s", local_mode)
            result = TorchDistributor(num_processes=num_processes, local_mode=local_mode,
                                      use_gpu=use_gpu).run(_torch_worker, data, config)

    model = delay_net(mean, scale, hidden_units)
    model.load_state_dict(result["state_dict"])
    model.eval()
    history: TrainingHistory = result["history"]
    best = history["best_epoch"]
    log.info("Kept epoch %d of %d: validation log loss %.4f", best, len(history["valid_log_loss"]),
             history["valid_log_loss"][best - 1])
    return model, history


def predict(model: torch.nn.Module, features: np.ndarray | pd.DataFrame) -> np.ndarray:
    """Probabilities of delay of ``features`` (``FEATURE_COLUMNS`` order) from the in-memory model."""
    import torch

    values = np.asarray(features, dtype=np.float32)
    with torch.no_grad():
        return model(torch.from_numpy(values)).numpy().astype(np.float64)


def log_torch_model(model: torch.nn.Module, *, signature: ModelSignature, input_example: pd.DataFrame,
                    name: str = "model") -> ModelInfo:
    """Log ``model`` to the active MLflow run as a ``pytorch`` model (with a pyfunc flavour).

    Saved in MLflow's "pickle" format, as the default "pt2" (``torch.export``) format accepts only
    tensor signatures, with which the pyfunc model no longer selects its input columns by name. The
    model's classes are saved by value, so loading needs torch and cloudpickle but not this project
    (and ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` left at its default, true).

    ``mlflow.pyfunc.load_model(uri).predict(frame)`` returns a pandas DataFrame of shape (rows, 1),
    with the frame's index and one column named ``0``: the probabilities (see :func:`probabilities`).

    :param model: a model from :func:`train_torch`.
    :param signature: the column signature: ``FEATURE_COLUMNS`` as doubles.
    :param input_example: a few rows of those columns.
    :param name: the model's name in the run.
    """
    import cloudpickle
    import mlflow
    import torch

    return mlflow.pytorch.log_model(
        model, name=name, signature=signature, input_example=input_example,
        serialization_format="pickle",
        # Given explicitly: inferring requirements re-imports the model and costs seconds; the local
        # version label of CPU builds ("+cpu") is not installable from PyPI.
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}",
                          f"cloudpickle=={cloudpickle.__version__}"],
    )


def probabilities(predictions: pd.DataFrame | pd.Series | np.ndarray) -> np.ndarray:
    """The 1-D probabilities in a pyfunc model's predictions: one column of a DataFrame, or an array.

    :param predictions: what ``PyFuncModel.predict`` returned.
    """
    values = np.asarray(predictions, dtype=np.float64)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ValueError(f"expected one probability per row, got predictions of shape {values.shape}")
    if (~np.isfinite(values) | (values < 0) | (values > 1)).any():
        raise ValueError("predictions are not probabilities: values outside [0, 1] or not finite")
    return values

