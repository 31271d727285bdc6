"""The training loop, parameter groups, LR schedules, checkpoints."""
