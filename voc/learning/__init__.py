"""The learned layer of the offline engine (5/6): classifiers for owner, tag, dimension and sentiment
trained on the knowledge base's examples, outside corpora, a bank's history and analysts' corrections."""
