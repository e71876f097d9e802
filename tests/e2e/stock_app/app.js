// A SMART app as its authors would write it with the stock JavaScript client (fhirclient): /launch starts
// a standalone launch, /app finishes it, reads the patient, refreshes the token and reads again. What
// happened is left in window.smartResult for the test to read.
(function () {
  "use strict";
  var params = new URLSearchParams(location.search);
  var show = function (result) {
    window.smartResult = result;
    document.getElementById("out").textContent = JSON.stringify(result, null, 2);
  };
  if (location.pathname === "/launch") {
    FHIR.oauth2.authorize({
      clientId: params.get("client_id"),
      iss: params.get("iss"),
      scope: "openid fhirUser launch/patient offline_access patient/Patient.rs patient/Observation.rs",
      redirectUri: "/app",
      pkceMode: "required"
    }).catch(function (error) { show({error: String(error)}); });
    return;
  }
  FHIR.oauth2.ready().then(async function (client) {
    var first = client.state.tokenResponse;
    var patient = await client.patient.read();
    await client.refresh();
    var second = client.state.tokenResponse;
    var again = await client.request("Patient/" + client.patient.id);
    var labs = await client.request("Observation?patient=" + client.patient.id + "&_count=5");
    show({
      patientId: client.patient.id,
      name: patient.name && patient.name[0] && (patient.name[0].given || []).concat(patient.name[0].family).join(" "),
      scope: second.scope,
      accessChanged: first.access_token !== second.access_token,
      hadRefreshToken: Boolean(first.refresh_token),
      readAfterRefresh: again.id,
      observationsAfterRefresh: labs.resourceType === "Bundle" ? (labs.entry || []).length : -1
    });
  }).catch(function (error) { show({error: String(error)}); });
}());
