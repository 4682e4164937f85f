"""REST API of the deployments app: environments, endpoints, rollouts and A/B outcomes under /api/v1/."""
