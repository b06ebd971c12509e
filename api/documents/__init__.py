"""What a person reads or fills, for the command line and the pages alike: the Excel ledger
(`ledger_workbook.py`: a template for a year, its rows imported as commands), the results
workbook (`results_workbook.py`) and the text renderings (`text.py`: an explanation, labels
Chinese first with English)."""
