from tests.unit.mappers.conftest import records  # noqa: F401 - the demo data set, shared
