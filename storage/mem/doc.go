// Package mem is a replica held in memory: a storage.Client for tests and
// fuzz targets, where a file on disk per input would cost more than the
// code under test. Put plants any bytes under any name, as a broken or
// hostile replica would hold them.
package mem
