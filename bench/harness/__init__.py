"""What trains Longformer the way FlagPerf does: model, data, masking, attention, the training loop.

model, data, masking, flagperf_data: the checkpoint, the token blocks and FlagPerf's MLM batches.
attention: the sliding-window implementations (HF's, blocked, dense) behind one switch.
train, runner, distributed: one training loop top to bottom, its run to a target, torchrun's ranks.
spec, options, presets, device: what a run is (options checked before anything is timed).
timing, metrics, fingerprint, prepare: marks, throughput and MFU, machine identity, the data files.
May import bench.base; nothing above it (the measuring engine, the verdicts, the commands).
"""
