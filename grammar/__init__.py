"""The .dl grammar (a Lark LALR grammar) as package data."""
