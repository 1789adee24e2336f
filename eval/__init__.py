"""The evaluation harness: gold datasets, metrics, baselines and the scorecard behind `voc eval`."""
