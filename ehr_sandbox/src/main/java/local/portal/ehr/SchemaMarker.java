package local.portal.ehr;

import ca.uhn.fhir.util.VersionUtil;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Remembers which HAPI FHIR version last started successfully on the H2 database, so that the
 * (slow) Hibernate schema update can be skipped on later starts with the same version.
 */
final class SchemaMarker {

	private static final Logger ourLog = LoggerFactory.getLogger(SchemaMarker.class);

	private SchemaMarker() {}

	private static Path markerFile(EhrSettings theSettings) {
		return theSettings.h2Dir().resolve("schema-hapi-version.txt");
	}

	private static Path databaseFile(EhrSettings theSettings) {
		return theSettings.h2Dir().resolve("hapi.mv.db");
	}

	static String expected() {
		return "hapi-fhir " + VersionUtil.getVersion() + "\n";
	}

	static boolean isCurrent(EhrSettings theSettings) {
		try {
			Path marker = markerFile(theSettings);
			return Files.isRegularFile(databaseFile(theSettings))
					&& Files.isRegularFile(marker)
					&& expected().equals(Files.readString(marker, StandardCharsets.UTF_8));
		} catch (IOException e) {
			return false;
		}
	}

	static void markCurrent(EhrSettings theSettings) {
		try {
			if (!isCurrent(theSettings)) {
				Files.writeString(markerFile(theSettings), expected(), StandardCharsets.UTF_8);
			}
		} catch (IOException e) {
			ourLog.warn("Could not write schema marker {}: {}", markerFile(theSettings), e.toString());
		}
	}
}
