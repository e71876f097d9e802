package local.portal.ehr;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.server.exceptions.BaseServerResponseException;
import ca.uhn.fhir.rest.server.exceptions.PreconditionFailedException;
import ca.uhn.fhir.rest.server.exceptions.ResourceVersionConflictException;
import jakarta.servlet.http.HttpServletRequest;

/**
 * HAPI's JPA layer reports a version mismatch of a versioned update/delete
 * ({@code If-Match: W/"n"} that is not the current version) as 409 Conflict. The FHIR
 * specification asks for 412 Precondition Failed, so those (and only those: codes HAPI-0989 for
 * update/patch and HAPI-0961 for delete) are re-mapped. Real concurrent-write conflicts stay 409.
 */
@Interceptor
public class PreconditionFailedInterceptor {

	private static final String[] VERSION_MISMATCH_CODES = {"HAPI-0989:", "HAPI-0961:"};

	@Hook(Pointcut.SERVER_PRE_PROCESS_OUTGOING_EXCEPTION)
	public BaseServerResponseException preProcessOutgoingException(
			RequestDetails theRequestDetails, Throwable theException, HttpServletRequest theServletRequest) {
		if (!(theException instanceof ResourceVersionConflictException)) {
			return null;
		}
		String message = theException.getMessage();
		if (message == null) {
			return null;
		}
		for (String code : VERSION_MISMATCH_CODES) {
			if (message.contains(code)) {
				return new PreconditionFailedException(message);
			}
		}
		return null;
	}
}
