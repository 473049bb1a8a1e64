"""Reporters: render result objects as JSON, Markdown and HTML with plots."""
