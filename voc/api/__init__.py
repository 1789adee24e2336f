"""The app's REST API: one router per resource (chat, runs, reports, proposals, voices, knowledge, reviews)."""
