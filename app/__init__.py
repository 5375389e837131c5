"""The Dash app: ``from app.factory import create_app``."""
