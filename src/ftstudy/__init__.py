"""ftstudy: the logic behind the "When Fine-Tuning Fails" MS MARCO workflow.

Every module is a set of plain functions, unit-tested without Snakemake; the Snakemake scripts under
``workflow/scripts`` only read ``snakemake.input``/``params`` and call into this package.
"""

__version__ = "0.1.0"
