package s3

// SpoolPrefix exposes the prefix of a replica's upload temp files to tests.
func SpoolPrefix(c *Client) string { return c.spoolPrefix() }
