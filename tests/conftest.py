import os

# the tests never reach a model or dataset hub: everything they load is built locally
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Shared fixtures live in small modules, one per owner; import them here so pytest finds them.
from tests.fixtures_models import isolated_training_env, scijudge_pairs_parquet, tiny_model_dir  # noqa: F401
