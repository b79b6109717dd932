"""crsmeta: living Bayesian meta-analysis of salvage treatments for severe CRS."""
__version__ = "0.1.0"
