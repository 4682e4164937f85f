"""The MLflow-compatible REST interface: the stock `mlflow` client talks to Stratum's services through it."""
