"""mailbot: the email helpdesk of the complaint service of Kecamatan Porong."""

__version__ = "0.1.0"
