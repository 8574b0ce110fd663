"""Start real local Celery, Dask and Kafka-protocol processes for the demo and the tests."""
