package main

func writeSVG(path string, res *Result) error { return nil }
