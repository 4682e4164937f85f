"""The registry core: models, versions, aliases, stages, artifacts, access control and the APIs over them."""
