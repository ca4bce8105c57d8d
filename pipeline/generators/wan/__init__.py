"""Wan image-to-video (diffusers): ``spec`` (config and registry entry), ``engine``, ``tiny``."""
