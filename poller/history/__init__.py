"""The history as payroll reads it: timesheets, corrections, month closes, retention."""
