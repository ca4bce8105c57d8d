"""Physics-aligned video generation: the WMReward pipeline evaluated on Physics-IQ."""

import os as _os

# Nothing in this project may reach a model hub: checkpoints are local folders. These are read
# once, when transformers / huggingface_hub / diffusers are first imported, so set them here.
for _var, _value in (
    ("HF_HUB_OFFLINE", "1"),
    ("TRANSFORMERS_OFFLINE", "1"),
    ("TRANSFORMERS_VERBOSITY", "error"),
    ("DIFFUSERS_VERBOSITY", "error"),
    ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
    ("WANDB_SILENT", "true"),
):
    _os.environ.setdefault(_var, _value)
