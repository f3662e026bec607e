"""Custom Rasa graph components of the shop assistant and the attachment model behind them."""
