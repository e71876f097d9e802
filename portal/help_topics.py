"""The help pages: for each part of the portal, the questions people ask about it, answered in plain words.

Short sentences and everyday words (a reading grade of about 7; the unit tests measure it). Each topic
names the page it helps with, so every page's footer can link to its own help.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web.i18n import lazy_gettext as _l

HELP_PAGE = "/portal/help"


@dataclass(frozen=True)
class Answer:
    question: Any  # lazy words (`_l`): shown in the language of the page
    answer: Any


@dataclass(frozen=True)
class HelpTopic:
    key: str
    title: Any  # the page's name, as in the menu (lazy words)
    href: str  # the page it helps with
    answers: tuple[Answer, ...]

    @property
    def url(self) -> str:
        return f"{HELP_PAGE}/{self.key}"


TOPICS: tuple[HelpTopic, ...] = (
    HelpTopic("home", _l("Home"), "/portal/", (
        Answer(_l("What is on the home page?"),
               _l("Home shows what is new since you last came, your next visits, and things to do. "
               "Each part has a link to the page with more.")),
        Answer(_l("How do I find a page that is not in the top menu?"),
               _l("Choose All pages at the top. It lists every page, with one line on what each is for.")),
        Answer(_l("Why was I signed out?"),
               _l("We sign you out after some time with no activity. This keeps your record safe if you walk "
               "away. Just sign in again. Nothing you sent is lost.")),
    )),
    HelpTopic("results", _l("Test results"), "/portal/results", (
        Answer(_l("When will I see my results?"),
               _l("Most lab results show here a few days after the test. Some take longer. Scans and other "
               "reports show once a doctor has written them up.")),
        Answer(_l("What do the words next to a result mean?"),
               _l("Normal means the result is in the usual range. High or low means it is outside that range. "
               "This is common and is not always a problem. Your care team looks at every result.")),
        Answer(_l("Can I see how a result has changed over time?"),
               _l("Yes. Open a test to see a chart of your past results for it, with the dates.")),
        Answer(_l("What should I do if a result worries me?"),
               _l("Send a message to your care team and ask. If you feel very unwell, call the clinic. "
               "In an emergency, call 911.")),
    )),
    HelpTopic("messages", _l("Messages"), "/portal/messages", (
        Answer(_l("Who reads my message?"),
               _l("The team for the topic you pick: your doctor's team, the front desk, or billing. "
               "Their answer shows here, in the same conversation.")),
        Answer(_l("How soon will I get an answer?"),
               _l("Your care team answers as soon as they can, most often within two working days. Do not use "
               "messages for urgent needs. Call the clinic, or 911 in an emergency.")),
        Answer(_l("Can I send a photo or a file?"),
               _l("Yes. When you write a message, you can add a picture or a PDF file.")),
    )),
    HelpTopic("appointments", _l("Appointments"), "/portal/appointments", (
        Answer(_l("How do I book a visit?"),
               _l("Choose Book a visit. Pick the kind of visit and a time that suits you. Then check the "
               "details and confirm.")),
        Answer(_l("How do I move or cancel a visit?"),
               _l("Open the visit and choose Move or cancel. Please do it at least one day before, so someone "
               "else can have the time.")),
        Answer(_l("Can I add a visit to my phone's calendar?"),
               _l("Yes. Open the visit and choose Add to my calendar. Your phone or computer opens the file.")),
    )),
    HelpTopic("medications", _l("Medicines"), "/portal/medications", (
        Answer(_l("How do I ask for a refill?"),
               _l("Find the medicine and choose Ask for a refill. Pick your pharmacy and send it. "
               "We tell you when the request has been looked at.")),
        Answer(_l("What if a medicine has no refills left?"),
               _l("Choose Ask for a renewal. Your care team decides if you need a new prescription.")),
        Answer(_l("A medicine on my list is wrong. What do I do?"),
               _l("Send a message to your care team. Tell them which medicine is wrong and why.")),
    )),
    HelpTopic("record", _l("Health record"), "/portal/record", (
        Answer(_l("Where are my visit notes?"),
               _l("Open Health record and look under Visits. Notes show once the doctor has finished them. "
               "It is a good idea to read them soon after a visit.")),
        Answer(_l("A word in my record is hard to understand. What can I do?"),
               _l("Many words have a short note on what they mean. If not, ask your care team in a message.")),
        Answer(_l("Something in my record is wrong. How do I get it fixed?"),
               _l("Send a message to your care team. Say what is wrong and what it should say.")),
    )),
    HelpTopic("todo", _l("To do"), "/portal/todo", (
        Answer(_l("What is on my to do list?"),
               _l("Things that need you soon: medicines running out, visits coming up, forms to fill in, and "
               "shots or check-ups that are due.")),
        Answer(_l("How do I take something off the list?"),
               _l("Do the task, like booking the check-up or asking for the refill. It goes away when your "
               "record shows it is done.")),
    )),
    HelpTopic("notebook", _l("Health notebook"), "/portal/notebook", (
        Answer(_l("What is the health notebook for?"),
               _l("It is a place to write things down between visits: how you feel, a side effect of a medicine, "
               "or a question for your next visit. It helps you remember what to say.")),
        Answer(_l("Who can read my notes?"),
               _l("Only you, and a caregiver who has access to your record, until you choose Share with my care "
               "team. After you share a note, your care team can read it. You cannot make it private again.")),
        Answer(_l("How do I take my notes to a visit?"),
               _l("Your questions for the next visit show on Home before the visit. You can also choose "
               "Print your notebook for your visit to get them on paper.")),
    )),
    HelpTopic("forms", _l("Forms"), "/portal/forms", (
        Answer(_l("Why did the clinic send me a form?"),
               _l("Forms help your care team get ready for a visit. Filling one in before you come saves time.")),
        Answer(_l("Can I stop and finish later?"),
               _l("Yes. Choose Save a draft. When you are done, choose Send to my care team. After you send it, "
               "you cannot change it.")),
    )),
    HelpTopic("referrals", _l("Referrals"), "/portal/referrals", (
        Answer(_l("What is a referral?"),
               _l("A referral is when your doctor sends you to a specialist, a doctor who knows one part of "
               "health very well.")),
        Answer(_l("How do I ask for one?"),
               _l("Choose Ask for a referral. Say what kind of doctor you want to see and why. Your care team "
               "looks at it and lets you know.")),
    )),
    HelpTopic("download", _l("Download"), "/portal/download", (
        Answer(_l("How do I get a copy of my record?"),
               _l("Choose Download. You can save a summary as a PDF file or print it. You can also save your "
               "whole record as a file for another doctor or an app.")),
        Answer(_l("Is it safe to save my record?"),
               _l("The file holds private health facts. Keep it somewhere safe, and only share it with people "
               "you trust.")),
    )),
    HelpTopic("billing", _l("Bills"), "/portal/billing", (
        Answer(_l("How do I pay a bill?"),
               _l("Open the bill and choose Pay now. You can pay by card. Rather pay another way? Call the billing "
               "office.")),
        Answer(_l("I think my bill is wrong. What do I do?"),
               _l("Send a message and pick the billing topic. Say which bill and what looks wrong. The billing team "
               "writes back in Messages.")),
    )),
    HelpTopic("profile", _l("Profile"), "/portal/profile", (
        Answer(_l("How do I change my phone number or address?"),
               _l("Open Profile and choose Change your contact details. Your change goes straight into your record.")),
        Answer(_l("How do I update my insurance?"),
               _l("Open Profile and find your insurance. Ask for a change there. Your request goes to the front "
                  "desk.")),
        Answer(_l("How do I tell the clinic about an allergy?"),
               _l("Open Profile and choose Tell us about an allergy. Your care team checks it at your next visit.")),
    )),
    HelpTopic("caregivers", _l("Caregivers"), "/portal/caregivers", (
        Answer(_l("What is a caregiver here?"),
               _l("A caregiver is someone you trust to help with your health, like a family member. You can let "
               "them see your record with their own sign-in. They never use yours.")),
        Answer(_l("How do I give someone access?"),
               _l("Open Caregivers and choose Invite a caregiver. They get an e-mail with a link to join.")),
        Answer(_l("How do I stop someone's access?"),
               _l("Open Caregivers and choose Stop access next to their name. It stops right away.")),
        Answer(_l("I help someone else. How do I see their record?"),
               _l("Sign in with your own account. If you help more than one person, choose whose record to open. "
               "The bar at the top of each page always says whose record is open.")),
    )),
    HelpTopic("account", _l("Your sign-ins"), "/portal/account", (
        Answer(_l("What is this page for?"),
               _l("It shows where and when you are signed in. If you see a place you do not know, sign it out "
               "and change your password.")),
        Answer(_l("How do I change my password?"),
               _l("Go to your account settings from Profile and choose Change password.")),
    )),
    HelpTopic("access-log", _l("Who looked"), "/portal/access-log", (
        Answer(_l("What does this page show?"),
               _l("Each time someone opened or changed your record through the portal, with the date and time. "
               "This includes you, your caregivers and apps you allowed.")),
        Answer(_l("I see something I do not know. What do I do?"),
               _l("Call the clinic or send a message. We will look into it.")),
    )),
    HelpTopic("settings", _l("Display settings"), "/portal/settings", (
        Answer(_l("How do I make the words bigger?"),
               _l("Open Display settings and choose Large text. The portal remembers this each time you sign in.")),
        Answer(_l("What does high contrast do?"),
               _l("It makes text darker and lines stronger, so pages are easier to read.")),
        Answer(_l("Can I zoom in instead?"),
               _l("Yes. Press Ctrl and + (or Command and + on a Mac) to zoom. Pages still fit the screen.")),
    )),
)

BY_KEY = {t.key: t for t in TOPICS}


def topic(key: str) -> HelpTopic | None:
    return BY_KEY.get(key)


def topic_for_path(path: str) -> HelpTopic | None:
    """The help topic of the page at `path` (the longest matching page address)."""
    best: HelpTopic | None = None
    for t in TOPICS:
        matches = path == t.href or (t.href != "/portal/" and path.startswith(t.href.rstrip("/") + "/"))
        if matches and (best is None or len(t.href) > len(best.href)):
            best = t
    return best


def help_url_for(path: str) -> str:
    found = topic_for_path(path)
    return found.url if found else HELP_PAGE
