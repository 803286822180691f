"""The truth about messages: every sent id's one fate, and the figures a run is judged by.

`fates` names the fates; the `ledger` folds the run's events, the final audit and the SQS
journal (`journal`, with the self-check) into them, with FIFO `ordering` and what SQS
itself did (`sqs_facts`); `expectations` are conditions over the figures.
"""
