"""The weekly 《客户心声》 report: figures (data), charts, HTML / Markdown / PDF (render)."""
