"""Task definitions, each in one place, split by paper:

  common/tasks/rationalyst/   RATIONALYST's seven benchmarks (and gsm_symbolic, offline GSM8K-style problems)
  common/tasks/refiner/       REFINER's three tasks, its text layouts (format.py) and seq2seq helpers
Shared by both: answers.py (number normalisation), choice.py (multiple choice), data.py (Hub or local rows),
records.py (task files read record by record, errors naming file and line).
"""
