"""Config schemas (dataclasses registered in Hydra's ConfigStore) and the config dir locator."""
