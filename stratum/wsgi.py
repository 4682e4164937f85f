"""WSGI entry point (gunicorn stratum.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stratum.settings")
application = get_wsgi_application()
