package s3

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/ltxvfs/ltxvfs/storage"
)

// errorCode is the S3 error code of err ("NoSuchKey", "SlowDown", ...) and
// the HTTP status of the answer; both are empty when no answer came.
func errorCode(err error) (code string, status int) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

// isNotFound reports an object that does not exist: NoSuchKey, or the bare
// 404 of a HEAD request, which has no body to carry a code.
func isNotFound(err error) bool {
	code, status := errorCode(err)
	return code == "NoSuchKey" || code == "NotFound" || (status == http.StatusNotFound && code == "")
}

// credentialCodes are the S3 error codes of refused credentials;
// XAdminUserNotFound is versitygw's answer to an unknown access key.
var credentialCodes = map[string]bool{
	"AccessDenied":          true,
	"ExpiredToken":          true,
	"InvalidAccessKeyId":    true,
	"InvalidToken":          true,
	"SignatureDoesNotMatch": true,
	"TokenRefreshRequired":  true,
	"XAdminUserNotFound":    true,
}

// classify puts the likely cause in front of the errors a user can fix: a
// bucket that does not exist and credentials that are missing or refused.
// The SDK's error stays wrapped for errors.As; it never holds the secret key.
func classify(err error, bucket string) error {
	code, status := errorCode(err)
	var se *v4.SigningError
	switch {
	case code == "NoSuchBucket":
		return noBucketError{bucket, err}
	case credentialCodes[code] || status == http.StatusForbidden:
		return fmt.Errorf("access to bucket %q denied (check the AWS credentials - AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE - and the bucket's policy): %w", bucket, err)
	case errors.As(err, &se):
		return fmt.Errorf("no usable AWS credentials (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE): %w", err)
	case status == 0 && strings.Contains(err.Error(), "get identity: "):
		// The SDK's credentials provider failed (credentials expired and
		// not renewed: a token service or instance metadata unreachable);
		// its error has no type of its own, only this wording.
		return fmt.Errorf("no usable AWS credentials: getting them failed (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, the instance or container role): %w", err)
	}
	return err
}

// noBucketError is the error of a request to a bucket that does not
// exist: it says so by name and matches storage.ErrNoBucket.
type noBucketError struct {
	bucket string
	err    error
}

func (e noBucketError) Error() string {
	return fmt.Sprintf("bucket %q does not exist: %v", e.bucket, e.err)
}

func (e noBucketError) Unwrap() []error { return []error{storage.ErrNoBucket, e.err} }
