"""Imports and exports: tasks, judgments and predictions in; datasets (TRL-ready) out. The outer layer."""
