"""End of day (日终轧帐): business days, the signed day-close report and catching up missed days.

Owns: which business day a moment belongs to, the day's totals per service, the cash that
should be in the box, vouchers, the float balance, and queueing the report for upload.
Must never: change a transaction or the float.
"""
