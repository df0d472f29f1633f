# Shared fixtures live in small modules, one per owner; import them here so pytest finds them.
from tests.fixtures_models import isolated_training_env, scijudge_pairs_parquet, tiny_model_dir  # noqa: F401
