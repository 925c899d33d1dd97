"""Prompt templates, shipped inside the wheel as ``mevqa.prompts``."""
