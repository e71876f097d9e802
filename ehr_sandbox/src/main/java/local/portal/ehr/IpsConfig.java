package local.portal.ehr;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.ips.api.IIpsGenerationStrategy;
import ca.uhn.fhir.jpa.ips.generator.IIpsGeneratorSvc;
import ca.uhn.fhir.jpa.ips.generator.IpsGeneratorSvcImpl;
import ca.uhn.fhir.jpa.ips.jpa.DefaultJpaIpsGenerationStrategy;
import ca.uhn.fhir.jpa.ips.provider.IpsOperationProvider;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * The International Patient Summary: {@code Patient/{id}/$summary} (and {@code Patient/$summary?identifier=})
 * answers a {@code document} Bundle built by HAPI's default JPA strategy (allergies, medicines, problems,
 * immunizations, procedures, results, vital signs, ... each section searched in the patient's compartment).
 */
@Configuration
public class IpsConfig {

	@Bean
	public IIpsGenerationStrategy ipsGenerationStrategy() {
		// Its DaoRegistry and FhirContext are injected by Spring; the generator service initialises it.
		return new DefaultJpaIpsGenerationStrategy();
	}

	@Bean
	public IIpsGeneratorSvc ipsGeneratorSvc(FhirContext theFhirContext, IIpsGenerationStrategy theStrategy) {
		return new IpsGeneratorSvcImpl(theFhirContext, theStrategy);
	}

	@Bean
	public IpsOperationProvider ipsOperationProvider(IIpsGeneratorSvc theGeneratorSvc) {
		return new IpsOperationProvider(theGeneratorSvc);
	}
}
