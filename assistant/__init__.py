"""Project-wide constants that every package may import: paths and message keys.

Nothing in here imports Rasa, torch or the database layer, so channels, components, actions, the shop
package, the media package, scripts and benchmarks can all depend on it.
"""
