"""The MLflow-compatible REST interface: the stock `mlflow` client talks to Stratum's services through it.

registry_views and tracking_views hold the routes, common their base view and paging, shapes the JSON MLflow
answers with, errors its error codes, urls the routes' paths.
"""
