"""voc: the core package — models, settings, storage, ingestion, masking, knowledge base, CLI."""
