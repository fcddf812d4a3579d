"""The Kivy touchscreen app (its own issue): a client of kiosk/ holding no business rule."""
