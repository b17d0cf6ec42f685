"""digits"""
