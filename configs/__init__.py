"""YAML recipes and run settings, installed with segrt as package data (segrt.configs)."""
