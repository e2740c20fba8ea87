"""cluster-eval: scheduled evaluation of self-hosted LLM serving clusters."""

__all__ = ["__version__"]
__version__ = "0.1.0"
