"""FlagPerf's published cases, as launch presets, with the numbers FlagPerf's nvidia README reports.

Published: A100-SXM4-40GB, PyTorch 1.12, fp32, random init, per-device batch 16, seq 1024; samples
are 1024-token blocks. These are references to read beside a run, not expectations.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    nodes: int
    gpus_per_node: int
    published: dict[str, float | None]  # A100 p_whole, p_train, p_core, mlm_acc

    @property
    def global_batch(self) -> int:
        return 16 * self.nodes * self.gpus_per_node

    def command(self) -> str:
        options = "--batch-size 16 --seq-len 1024 --init random --dtype fp32"
        data = "--model-dir DIR/longformer_train/model --data-dir DIR/longformer_train/dataset"
        if self.nodes * self.gpus_per_node == 1:
            return f"python -m bench train {options} {data}"
        launcher = f"torchrun --nnodes {self.nodes} --nproc-per-node {self.gpus_per_node}"
        if self.nodes > 1:
            launcher += " --node-rank N --master-addr HOST --master-port 29500"
        return f"{launcher} -m bench train {options} {data}"


PRESETS = {
    "1x1": Preset("1x1", 1, 1, {"p_whole": 32, "p_train": 32, "p_core": 33, "mlm_acc": None}),
    "1x8": Preset("1x8", 1, 8, {"p_whole": 216, "p_train": 251, "p_core": 254, "mlm_acc": 0.64}),
    "2x8": Preset("2x8", 2, 8, {"p_whole": None, "p_train": None, "p_core": None, "mlm_acc": None}),
}
