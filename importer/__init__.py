"""engagement-importer: CRM recordings into AskElephant, exactly once."""

__version__ = "0.1.0"
