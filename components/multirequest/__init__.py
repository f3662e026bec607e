"""The parts of the multi-request handling: splitting a message into clauses, and folding the clauses'
intents and the message's entities into requests (see components/clause_splitter.py and
components/multi_request.py)."""
