package local.portal.ehr;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.ips.provider.IpsOperationProvider;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.model.entity.StorageSettings;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.provider.ValueSetOperationProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.ETagSupportEnum;
import ca.uhn.fhir.rest.server.IncomingRequestAddressStrategy;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import jakarta.persistence.EntityManagerFactory;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;
import org.springframework.transaction.annotation.EnableTransactionManagement;

import java.util.LinkedHashSet;
import java.util.Properties;
import java.util.Set;
import javax.sql.DataSource;

/**
 * Wires a HAPI FHIR JPA R4 server (the same building blocks the official JPA starter uses),
 * with settings chosen for a local, single-user sandbox EHR.
 */
@Configuration
@EnableTransactionManagement
@Import({
	JpaR4Config.class,
	HapiJpaConfig.class,
	ThreadPoolFactoryConfig.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	// in-memory message broker used by batch2 (no subscription processing is configured)
	SubscriptionChannelConfig.class,
	// Patient/$summary: the International Patient Summary generator
	IpsConfig.class
})
public class FhirServerConfig {

	public static final int DEFAULT_PAGE_SIZE = 20;
	public static final int MAX_PAGE_SIZE = 500;

	@Bean
	public EhrSettings ehrSettings() {
		return EhrSettings.fromEnvironment();
	}

	@Bean(destroyMethod = "close")
	public DataSource dataSource(EhrSettings theSettings) {
		HikariConfig cfg = new HikariConfig();
		cfg.setPoolName("ehr-h2");
		cfg.setDriverClassName("org.h2.Driver");
		cfg.setJdbcUrl(theSettings.jdbcUrl());
		cfg.setUsername("sa");
		cfg.setPassword("");
		cfg.setMaximumPoolSize(12);
		cfg.setMinimumIdle(2);
		cfg.setAutoCommit(false);
		return new HikariDataSource(cfg);
	}

	@Bean
	public JpaStorageSettings jpaStorageSettings(EhrSettings theSettings) {
		JpaStorageSettings s = new JpaStorageSettings();

		// Client-assigned ids of any form (also purely numeric ones); server-assigned ids are UUIDs
		// so they can never collide with client ids.
		s.setResourceClientIdStrategy(JpaStorageSettings.ClientIdStrategyEnum.ANY);
		s.setResourceServerIdStrategy(JpaStorageSettings.IdStrategyEnum.UUID);

		// Loading-friendly referential integrity: a reference to a resource that does not exist yet
		// creates a placeholder (which a later PUT with the same id simply updates), and conditional
		// references in transactions that match nothing create a placeholder carrying the identifier.
		s.setAutoCreatePlaceholderReferenceTargets(true);
		s.setPopulateIdentifierInAutoCreatedPlaceholderReferenceTargets(true);
		s.setEnforceReferentialIntegrityOnWrite(false);
		s.setEnforceReferentialIntegrityOnDelete(false);
		s.setAllowInlineMatchUrlReferences(true);
		s.setAllowExternalReferences(true);
		Set<String> localBases = new LinkedHashSet<>();
		for (String host : new String[] {theSettings.advertisedHost(), "localhost", "127.0.0.1"}) {
			localBases.add("http://" + host + ":" + theSettings.port() + "/fhir");
		}
		s.setTreatBaseUrlsAsLocal(localBases);

		s.setAllowMultipleDelete(true);
		s.setExpungeEnabled(false);
		s.setDeleteExpungeEnabled(false);

		// Always run searches fresh (a sandbox is written to and read back immediately by tests);
		// the search-results cache is still used for paging ("next" links).
		s.setReuseCachedSearchResultsForMillis(null);
		s.setExpireSearchResultsAfterMillis(60L * 60 * 1000);

		// No full-text / Lucene / Elasticsearch, no subscriptions, no :missing indexing.
		s.setAdvancedHSearchIndexing(false);
		s.setHibernateSearchIndexSearchParams(false);
		s.setStoreResourceInHSearchIndex(false);
		s.setIndexMissingFields(StorageSettings.IndexEnabledEnum.DISABLED);
		s.setLastNEnabled(false);

		s.setFilterParameterEnabled(true);
		s.setDefaultSearchParamsCanBeOverridden(true);
		s.setInlineResourceTextBelowSize(4000);
		return s;
	}

	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	@Bean
	public SubscriptionSettings subscriptionSettings() {
		// No subscription channel types enabled.
		return new SubscriptionSettings();
	}

	@Bean
	@Primary
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			DataSource theDataSource,
			ConfigurableListableBeanFactory theBeanFactory,
			FhirContext theFhirContext,
			JpaStorageSettings theStorageSettings,
			EhrSettings theSettings) {
		LocalContainerEntityManagerFactoryBean retVal =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(theBeanFactory, theFhirContext, theStorageSettings);
		retVal.setPersistenceUnitName("HAPI_PU");
		retVal.setDataSource(theDataSource);
		retVal.setJpaProperties(hibernateProperties(SchemaMarker.isCurrent(theSettings) ? "none" : "update"));
		return retVal;
	}

	private static Properties hibernateProperties(String theHbm2ddl) {
		Properties p = new Properties();
		p.put("hibernate.dialect", HapiFhirH2Dialect.class.getName());
		// "update" creates the schema on a fresh database (and adds anything missing after a HAPI
		// upgrade); once a start with this HAPI version succeeded, the check is skipped ("none").
		p.put("hibernate.hbm2ddl.auto", theHbm2ddl);
		p.put("hibernate.format_sql", "false");
		p.put("hibernate.show_sql", "false");
		p.put("hibernate.jdbc.batch_size", "50");
		p.put("hibernate.order_inserts", "true");
		p.put("hibernate.order_updates", "true");
		p.put("hibernate.cache.use_query_cache", "false");
		p.put("hibernate.cache.use_second_level_cache", "false");
		p.put("hibernate.cache.use_structured_entries", "false");
		p.put("hibernate.cache.use_minimal_puts", "false");
		p.put("hibernate.search.enabled", "false");
		return p;
	}

	@Bean
	@Primary
	public JpaTransactionManager transactionManager(EntityManagerFactory theEntityManagerFactory) {
		JpaTransactionManager retVal = new JpaTransactionManager();
		retVal.setEntityManagerFactory(theEntityManagerFactory);
		return retVal;
	}

	@Bean
	public RestfulServer fhirRestfulServer(
			FhirContext theFhirContext,
			IFhirSystemDao<?, ?> theSystemDao,
			ResourceProviderFactory theResourceProviderFactory,
			@Qualifier("mySystemProviderR4") JpaSystemProvider<?, ?> theSystemProvider,
			ValueSetOperationProvider theValueSetOperationProvider,
			JpaStorageSettings theStorageSettings,
			ISearchParamRegistry theSearchParamRegistry,
			IValidationSupport theValidationSupport,
			DatabaseBackedPagingProvider thePagingProvider,
			IpsOperationProvider theIpsOperationProvider) {
		RestfulServer server = new RestfulServer(theFhirContext);
		server.setServerName("EHR sandbox (HAPI FHIR JPA R4)");
		server.registerProviders(theResourceProviderFactory.createProviders());
		server.registerProvider(theSystemProvider);
		server.registerProvider(theValueSetOperationProvider);
		server.registerProvider(theIpsOperationProvider);

		JpaCapabilityStatementProvider capabilities = new JpaCapabilityStatementProvider(
				server, theSystemDao, theStorageSettings, theSearchParamRegistry, theValidationSupport);
		capabilities.setImplementationDescription("EHR sandbox (HAPI FHIR JPA R4)");
		server.setServerConformanceProvider(capabilities);

		thePagingProvider.setDefaultPageSize(DEFAULT_PAGE_SIZE);
		thePagingProvider.setMaximumPageSize(MAX_PAGE_SIZE);
		server.setPagingProvider(thePagingProvider);
		server.setDefaultPageSize(DEFAULT_PAGE_SIZE);
		server.setMaximumPageSize(MAX_PAGE_SIZE);

		server.setDefaultResponseEncoding(EncodingEnum.JSON);
		server.setDefaultPrettyPrint(false);
		server.setETagSupport(ETagSupportEnum.ENABLED);
		server.setServerAddressStrategy(new IncomingRequestAddressStrategy());
		server.registerInterceptor(new PreconditionFailedInterceptor());
		return server;
	}

	@Bean
	public ServletRegistrationBean<RestfulServer> fhirServletRegistration(RestfulServer theServer) {
		ServletRegistrationBean<RestfulServer> reg = new ServletRegistrationBean<>(theServer, "/fhir/*");
		reg.setName("fhirServlet");
		reg.setLoadOnStartup(1);
		return reg;
	}
}
