"""sealboard: where the sealtoken firmware runs (in process, vpcd, CTAPHID link, boards)."""
